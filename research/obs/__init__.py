"""Run directories to and from Huawei Cloud OBS (``esdk-obs-python``): resumable, verified transfers.

``python -m research.obs --help`` for the CLI; ``ObsStore`` for the Python API; ``ObsCheckpointUploader``
(``research.obs.callback``) uploads checkpoints in the background during training.
"""
from .settings import ObsConfigError, ObsSettings, load_settings
from .store import ObjectInfo, ObsError, ObsStore, ObsUrl, UploadResult

__all__ = ["ObsConfigError", "ObsSettings", "load_settings", "ObjectInfo", "ObsError", "ObsStore", "ObsUrl",
           "UploadResult"]
