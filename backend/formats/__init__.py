"""File formats in and out: meshes (OBJ, glTF) and images."""
