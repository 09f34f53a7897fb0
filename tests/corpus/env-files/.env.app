# Settings of the app container (not compose variables).
GREETING=bonjour
APP_ENV=staging
