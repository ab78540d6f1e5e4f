"""Built-in adapters. Each lives in its own module so that loading one never imports the
library another needs."""
