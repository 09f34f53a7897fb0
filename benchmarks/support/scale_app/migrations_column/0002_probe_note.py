from django.db import migrations, models


class Migration(migrations.Migration):
    """The one-column migration that the scale benchmark times across every organisation."""

    dependencies = [("scale_app", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="probe",
            name="note",
            field=models.CharField(blank=True, default="", max_length=50),
        ),
    ]
