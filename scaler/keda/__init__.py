"""KEDA's own behaviour, restated: the ScaledJob arithmetic and manifest reading."""
