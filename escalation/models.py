"""Models of this app arrive with its issue; the app is registered so that the layout is set."""
