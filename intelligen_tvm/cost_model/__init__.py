"""Cost model and search (features, XGBoost ranking, records): not built yet, see the search issue."""
