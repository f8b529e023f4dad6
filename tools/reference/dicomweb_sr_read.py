"""Reads fedcxr's DICOM Structured Reports and presentation states with pydicom (the reference reader) and
prints what they say as JSON.

Used by packages/cli/src/commands/predict-dicomweb.test.ts: the objects `cxr predict --dicomweb --store --gsps`
sent to a real Orthanc through STOW-RS are retrieved again and read here, independently of the TypeScript
writers.

    python tools/reference/dicomweb_sr_read.py object1.dcm [object2.dcm ...]

prints a JSON list, one object per file: identity (study, series, SOP instance, SOP class), the series
description and manufacturer fedcxr sets, the patient module, and then
- for a Structured Report: the evidence it cites and its measurement groups (finding, score, the box's closed
  polyline, the image it is selected from);
- for a Grayscale Softcopy Presentation State: the images it applies to, its graphic objects (polylines) and
  text objects, and its presentation LUT shape.
"""

import json
import sys

import pydicom


GSPS = "1.2.840.10008.5.1.4.1.1.11.1"


def identity(ds, path):
    return {
        "file": path,
        "sop_class": str(ds.SOPClassUID),
        "study": str(ds.StudyInstanceUID),
        "series": str(ds.SeriesInstanceUID),
        "sop": str(ds.SOPInstanceUID),
        "modality": str(ds.Modality),
        "series_description": str(ds.get("SeriesDescription", "")),
        "manufacturer": str(ds.get("Manufacturer", "")),
        "patient_id": str(ds.get("PatientID", "")),
        "patient_name": str(ds.get("PatientName", "")),
    }


def read_gsps(ds, path):
    images = [
        str(image.ReferencedSOPInstanceUID)
        for series in ds.ReferencedSeriesSequence
        for image in series.ReferencedImageSequence
    ]
    graphics, texts = [], []
    for annotation in ds.get("GraphicAnnotationSequence", []):
        for g in annotation.get("GraphicObjectSequence", []):
            graphics.append({"type": str(g.GraphicType), "units": str(g.GraphicAnnotationUnits), "points": [float(v) for v in g.GraphicData]})
        for t in annotation.get("TextObjectSequence", []):
            texts.append(str(t.UnformattedTextValue))
    return {**identity(ds, path), "images": images, "graphics": graphics, "texts": texts, "presentation_lut": str(ds.PresentationLUTShape)}


def read(path):
    ds = pydicom.dcmread(path)
    if str(ds.SOPClassUID) == GSPS:
        return read_gsps(ds, path)
    evidence = []
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series in study.ReferencedSeriesSequence:
            for sop in series.ReferencedSOPSequence:
                evidence.append(
                    {
                        "study": str(study.StudyInstanceUID),
                        "series": str(series.SeriesInstanceUID),
                        "sop": str(sop.ReferencedSOPInstanceUID),
                    }
                )
    groups = []
    for item in ds.ContentSequence:
        if item.ValueType != "CONTAINER" or item.ConceptNameCodeSequence[0].CodeValue != "126010":
            continue
        for group in item.get("ContentSequence", []):
            found = {}
            for c in group.ContentSequence:
                if c.ValueType == "CODE":
                    found["label"] = str(c.ConceptCodeSequence[0].CodeMeaning)
                elif c.ValueType == "NUM":
                    found["score"] = float(c.MeasuredValueSequence[0].NumericValue)
                elif c.ValueType == "SCOORD":
                    found["points"] = [float(v) for v in c.GraphicData]
                    found["ref"] = str(c.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
            groups.append(found)
    return {
        **identity(ds, path),
        "template": str(ds.ContentTemplateSequence[0].TemplateIdentifier),
        "evidence": evidence,
        "groups": groups,
    }


if __name__ == "__main__":
    print(json.dumps([read(path) for path in sys.argv[1:]]))
