"""Image code with no torch and no sessions: reading photos, finding faces and the FFHQ crop, geometry,
the motion field, pasting an edit into the photo, and drawing previews."""
