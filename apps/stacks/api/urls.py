app_name = "stacks-api"

urlpatterns = []
