"""One key resolver: the order keys are found in, and keys held where no text shows them."""

from __future__ import annotations

import pickle

import pytest
from pydantic import SecretStr

from hybridstack import Catalog, Stack
from hybridstack.catalog.keys import KEYLESS, KeyResolver, key_variable, needs_key
from hybridstack.errors import MissingAPIKeyError, SecretPickleError
from hybridstack.providers import PLACEHOLDER_API_KEY, resolve_api_key
from hybridstack.resilience import ProviderPool

SECRET = "sk-keys-test-9f8e7d6c5b4a39281706"


@pytest.fixture
def hosted():
    """A hosted deployment (names a key variable) and a local one (names none)."""
    catalog = Catalog.default()
    hosted = next(d for d in catalog if d.api_key_env is not None)
    local = next(d for d in catalog if d.api_key_env is None)
    return hosted, local


def test_the_order_keys_are_found_in(hosted) -> None:
    dep, _ = hosted
    var = dep.api_key_env
    env = {var: "from-env"}
    assert KeyResolver(environ=env).lookup(dep) == "from-env"
    assert KeyResolver({var: "by-var"}, environ=env).lookup(dep) == "by-var"
    in_code = dep.model_copy(update={"api_key": SecretStr("in-code")})
    assert KeyResolver({var: "by-var"}, environ=env).lookup(in_code) == "in-code"
    assert KeyResolver({dep.id: "by-id", var: "by-var"}, environ=env).lookup(in_code) == "by-id"


def test_a_missing_key_names_its_variable(hosted) -> None:
    dep, _ = hosted
    keys = KeyResolver(environ={})
    assert keys.lookup(dep) is None
    assert not keys.available(dep)
    with pytest.raises(MissingAPIKeyError, match=dep.api_key_env):
        keys.resolve(dep)
    assert keys.resolve(dep, "explicit") == "explicit"


def test_a_local_server_needs_no_key(hosted) -> None:
    _, local = hosted
    assert KeyResolver(environ={}).resolve(local) == KEYLESS == PLACEHOLDER_API_KEY
    assert not needs_key(local)
    assert key_variable(local) is None


def test_the_provider_layer_resolves_through_the_same_resolver(hosted, monkeypatch) -> None:
    dep, _ = hosted
    monkeypatch.setenv(dep.api_key_env, "from-env")
    assert resolve_api_key(dep) == "from-env"
    monkeypatch.delenv(dep.api_key_env)
    with pytest.raises(MissingAPIKeyError):
        resolve_api_key(dep)


def test_resolver_shows_names_never_values(hosted) -> None:
    dep, _ = hosted
    keys = KeyResolver({dep.api_key_env: SECRET})
    assert SECRET not in repr(keys)
    assert dep.api_key_env in repr(keys)
    with pytest.raises(SecretPickleError):
        pickle.dumps(keys)


def test_provider_pool_holds_keys_secret_safe(hosted) -> None:
    """The pool's keys are never in its state as text, and it refuses to be pickled."""
    dep, _ = hosted
    pool = ProviderPool(api_keys={dep.api_key_env: SECRET})
    assert SECRET not in repr(pool)
    assert SECRET not in repr(vars(pool))
    with pytest.raises(SecretPickleError):
        pickle.dumps(pool)


def test_stack_routes_with_a_key_given_in_code(hosted, monkeypatch) -> None:
    dep, _ = hosted
    monkeypatch.delenv(dep.api_key_env, raising=False)
    stack = Stack(Catalog.default(), api_keys={dep.api_key_env: SECRET})
    assert stack.router.key_available(dep)
    assert SECRET not in repr(vars(stack))
