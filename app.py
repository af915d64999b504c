"""emocore dashboard: page config, logo and navigation; the pages live in pages/."""

from emocore.ui.navigation import app_frame

app_frame().run()
