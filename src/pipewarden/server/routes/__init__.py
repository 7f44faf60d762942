"""The API's routers, one file per part; each route declares its guard in the route table."""
