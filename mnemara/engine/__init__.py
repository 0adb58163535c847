"""The turn engine: permissions, the SDK session and the window it sends."""
