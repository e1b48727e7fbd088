"""StyleCLIP global directions in StyleSpace (method ``global``)."""
