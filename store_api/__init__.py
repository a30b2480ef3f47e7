"""go-micro's ``Store`` interface over the seglog engine (contract: STORE_API.md).

>>> from store_api import LogStore, Record
>>> with LogStore(path) as store:                       # doctest: +SKIP
...     store.write(Record("user/1", b"ada", {"age": 36}), ttl=60)
...     store.read("user/", prefix=True)[0].metadata
{'age': 36}
"""

from store_api.default import default_store
from store_api.interface import Store
from store_api.logstore import LogStore, new_store
from store_api.options import Options
from store_api.paths import default_dir
from store_api.record import NotFoundError, Record

__all__ = [
    "LogStore",
    "NotFoundError",
    "Options",
    "Record",
    "Store",
    "default_dir",
    "default_store",
    "new_store",
]
