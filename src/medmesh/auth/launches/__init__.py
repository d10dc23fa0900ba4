"""EHR launch contexts (SMART App Launch: the ``launch`` parameter)."""
