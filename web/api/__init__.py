"""The JSON API, version 1 (contract in docs/api.md and /api/v1/openapi.json)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from web.api import audit_routes, clients, documents, openapi


def routes() -> list[BaseRoute]:
    return [
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/me", clients.me, methods=["GET"]),
        Route("/clients", clients.list_clients, methods=["GET"]),
        Route("/clients", clients.create_client, methods=["POST"]),
        Route("/clients/{client_id}/folders", clients.client_root, methods=["GET"]),
        Route("/folders", clients.create_folder, methods=["POST"]),
        Route("/folders/{folder_id}", clients.get_folder, methods=["GET"]),
        Route("/folders/{folder_id}/files/{name:path}", documents.put_file, methods=["PUT"]),
        Route("/documents/{document_id}", documents.get_document, methods=["GET"]),
        Route("/documents/{document_id}", documents.delete_document, methods=["DELETE"]),
        Route("/documents/{document_id}/content", documents.get_content, methods=["GET"]),
        Route("/audit", audit_routes.list_events, methods=["GET"]),
        Route("/audit/export", audit_routes.export_events, methods=["GET"]),
        Route("/audit/verify", audit_routes.verify_chain, methods=["GET"]),
    ]
