import pytest

from kdlib.registry import Registry


def test_registry_registers_once_and_names_unknown_entries():
    registry = Registry("widget")

    @registry.register("b")
    def b():
        return "b"

    registry.register("a")(lambda: "a")
    assert registry.names() == ["a", "b"] and registry.get("b") is b
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(lambda: None)
    with pytest.raises(ValueError, match="unknown widget 'c'; available: a, b"):
        registry.get("c")
