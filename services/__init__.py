"""The SPA platform: three services (spa, routing, teams) and the library they share."""
