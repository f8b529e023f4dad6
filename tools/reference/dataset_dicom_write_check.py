"""Reads the DICOM files fedcxr's writer produced (packages/dicom/src/write.test.ts) with pydicom, strictly
(Part 10 preamble and file meta required), and records what pydicom sees, for the TypeScript test.
Run: V=$(bash /work/shared/tools/python-reference-env.sh); $V/bin/python tools/reference/dataset_dicom_write_check.py"""
import json
from pathlib import Path

import pydicom

folder = Path(__file__).parent / "fixtures" / "dataset" / "dicom-write"
out = {}
for path in sorted(folder.glob("*.dcm")):
    ds = pydicom.dcmread(path, force=False)
    meta = ds.file_meta
    assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    seen = {
        "TransferSyntaxUID": str(meta.TransferSyntaxUID),
        "MediaStorageSOPInstanceUID": str(meta.MediaStorageSOPInstanceUID),
        "FileMetaInformationGroupLength": int(meta.FileMetaInformationGroupLength),
    }
    for key in ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
                "BodyPartExamined", "PatientID", "PhotometricInterpretation", "PixelIntensityRelationship",
                "StudyDate"]:
        seen[key] = str(ds[key].value) if key in ds else None
    seen["PatientName"] = str(ds.PatientName)
    for key in ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                "SamplesPerPixel", "InstanceNumber"]:
        seen[key] = int(ds[key].value)
    for key in ["WindowCenter", "WindowWidth"]:
        seen[key] = float(ds[key].value) if key in ds else None
    seen["pixels"] = ds.pixel_array.astype(int).flatten().tolist()
    out[path.name] = seen
(folder / "expected.json").write_text(json.dumps(out, indent=1))
print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "pixels"} for k, v in out.items()}, indent=1))
