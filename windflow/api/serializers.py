"""Shared serializer bases of the API."""

import copy


class FieldsBuiltOnce:
    """For a ModelSerializer whose fields depend on its class only (no `get_fields` that reads
    the request or the context): DRF builds them from the model on every use (introspection,
    field mapping, validators), the largest part of a list request's serializer cost after
    the rows themselves. Built once per class here, then copied for each use, as DRF copies
    declared fields (Field.__deepcopy__ makes the field anew from its arguments)."""

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built_once")
        if built is None:
            built = super().get_fields()
            cls._fields_built_once = built
        return copy.deepcopy(built)
