"""Self-compensation and alignment: the paper's pixel-only SCA and our decoder-aware one."""
