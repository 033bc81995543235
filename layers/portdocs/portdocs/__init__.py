"""portdocs runtime: gets number-porting documents onto Telnyx draft port requests."""
