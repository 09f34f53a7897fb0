app_name = "stacks"

urlpatterns = []
