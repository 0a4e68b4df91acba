"""The read models' tables in PostgreSQL (`schema`), a batch's reads and writes in one
transaction (`store`, `writes`), and digests that compare two schemas (`digest`)."""
