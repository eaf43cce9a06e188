"""Publishes trained models so others can reuse them: the timm / Hugging Face folder with its
model card, the MLflow Model Registry version and alias, the optional push to the Hub; and the
published models as a zoo (listed, ranked on a target)."""
