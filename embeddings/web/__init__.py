"""What people and clients reach: browser pages (views), how a search travels in links (links), the
JSON API assembled in api from its routers (api_search, api_images, api_model, api_libraries) on
shared plumbing (api_base), and its shapes (schemas, schemas_status). May import anything below."""
