"""The platform as its invoices name it (SPEC §12: name, address and invoice
registration number, from configuration `SETTLEMENT_PLATFORM_*`). Checked when
the configuration is read: the number as a corporation's (`T` + 13 digits, the
法人番号's check digit), by `settlement/banking/registration.py`."""

from __future__ import annotations

from dataclasses import dataclass

from settlement.banking.registration import check_registration_number
from settlement.core.errors import ConfigError, InvalidInput

NAME_CHARS_MAX = 200
ADDRESS_CHARS_MAX = 400


@dataclass(frozen=True)
class Issuer:
    name: str
    address: str
    registration_number: str

    @classmethod
    def checked(cls, name: str, address: str, registration_number: str) -> Issuer:
        """The issuer, else `ConfigError` naming the variable at fault."""
        for variable, value, limit in (("SETTLEMENT_PLATFORM_NAME", name, NAME_CHARS_MAX),
                                       ("SETTLEMENT_PLATFORM_ADDRESS", address,
                                        ADDRESS_CHARS_MAX)):
            if not value.strip() or len(value) > limit or not value.isprintable():
                raise ConfigError(f"{variable} must be 1 to {limit} printable characters")
        try:
            check_registration_number(registration_number, "corporation")
        except InvalidInput as exc:
            raise ConfigError(f"SETTLEMENT_PLATFORM_INVOICE_REGISTRATION_NUMBER: {exc}") from exc
        return cls(name.strip(), address.strip(), registration_number)

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address,
                "registration_number": self.registration_number}
