FROM python:3.11-slim

WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . && useradd --create-home settlement

# The service keeps no state of its own in the container: compose points it at
# PostgreSQL and Kafka.
USER settlement
WORKDIR /home/settlement
EXPOSE 8080
CMD ["settlement", "run"]
