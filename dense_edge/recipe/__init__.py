"""Recipes: YAML files that hold every stage's options (model, data, export, calibration,
targets, budgets). CLI flags override recipe values key for key."""

from dense_edge.recipe.loader import load_recipe, parse_set_option
from dense_edge.recipe.schema import Recipe

__all__ = ["Recipe", "load_recipe", "parse_set_option"]
