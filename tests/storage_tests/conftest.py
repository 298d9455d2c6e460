from hwtest import mnist_root, pg_database, prefix, storage_url  # noqa: F401
