"""A cloud-init NoCloud seed as an ISO 9660 image (volume id `cidata`), made in Python."""

import io

import pycdlib

VOLUME_ID = "cidata"  # what cloud-init's NoCloud looks for


def _iso_name(name, number):
    """An ISO 9660 level-1 name for a file; readers see the Rock Ridge and Joliet names."""
    stem = "".join(c for c in name.upper() if c.isalnum())[:6] or "FILE"
    return f"/{stem}{number:02d}.;1"


def make_seed_iso(files) -> bytes:
    """The bytes of an ISO holding files ({name: bytes}) under their own names."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_ID)
    try:
        for number, (name, data) in enumerate(sorted(files.items())):
            iso.add_fp(
                io.BytesIO(data),
                len(data),
                _iso_name(name, number),
                rr_name=name,
                joliet_path=f"/{name}",
            )
        out = io.BytesIO()
        iso.write_fp(out)
    finally:
        iso.close()
    return out.getvalue()
