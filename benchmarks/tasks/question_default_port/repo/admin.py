from config import ADMIN_OFFSET, BASE_PORT

ADMIN_PORT = BASE_PORT + ADMIN_OFFSET  # the admin console, separate from the server
