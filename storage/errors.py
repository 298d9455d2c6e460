"""The one error the storage layer raises; its message is safe to print (no password)."""


class StorageError(RuntimeError):
    pass
