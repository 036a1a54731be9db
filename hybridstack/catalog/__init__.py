"""hybridstack.catalog: model families, their deployments, prices and regions.

``Catalog.default()`` is the bundled catalog (``data/catalog.toml``, parsed on first
use); ``Catalog.default().with_file("my-catalog.toml")`` adds and overrides entries
from your own TOML, YAML or JSON file in the same format. Importing this package is
cheap: no file is read and no YAML parser is imported until one is needed.
"""

from hybridstack.catalog.catalog import Catalog
from hybridstack.catalog.models import Deployment, Family, Feature, Price, Protocol

__all__ = ["Catalog", "Deployment", "Family", "Feature", "Price", "Protocol"]
