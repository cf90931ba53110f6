// The YouTube driver (DESIGN A4): channels.update branding, playlists CRUD.
