"""An OAuth-protected MCP server and its authorization server, for tests/api/mcp_oauth.rs, written with the
MCP Python SDK v2's auth support (`mcp.server.auth`).

Serves on 127.0.0.1, on a port the system picks, and prints `PORT <n>` once it listens:
- the MCP endpoint `/mcp`, which wants a bearer token issued for the resource `http://127.0.0.1:<n>/mcp`
  (RFC 8707; the SDK checks the token's resource) and answers 401 with its protected resource metadata
  (RFC 9728) otherwise; its one tool, `echo`;
- the authorization server at the same origin: metadata (RFC 8414), dynamic client registration
  (RFC 7591), `/authorize` (approved at once, no login page: it redirects to the client's redirect URI
  with a code) and `/token` (authorization code with PKCE, refresh). Access tokens live 3 seconds;
- for the test: `GET /test/log` (what the authorization server saw: each authorization's and grant's
  resource indicator, and the grant types), `GET /test/tokens` (every token issued),
  `POST /test/revoke-access` (every access token issued so far stops working), `POST /test/reject-refresh` (every refresh is refused with
  `invalid_grant` from then on).
"""

import secrets
import sys
import time
from pathlib import Path

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.requests import Request
from starlette.responses import JSONResponse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mcp-python"))
from listen import listener, serve  # noqa: E402

ACCESS_TOKEN_SECONDS = 3


class Provider:
    """An authorization server that approves every request and remembers what it was asked."""

    def __init__(self) -> None:
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.reject_refresh = False
        self.log: list[dict] = []
        # Every token issued, so a test can look for them where they must not be.
        self.issued: list[str] = []

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.log.append({"event": "register", "auth_method": client_info.token_endpoint_auth_method})
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        code = secrets.token_urlsafe(24)
        self.log.append({"event": "authorize", "resource": params.resource, "scopes": params.scopes})
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + 300,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client, authorization_code: str) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    async def exchange_authorization_code(self, client, authorization_code: AuthorizationCode) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        self.log.append({"event": "grant", "grant_type": "authorization_code", "resource": authorization_code.resource})
        return self._issue(client.client_id, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(self, client, refresh_token: str) -> RefreshToken | None:
        return self.refresh.get(refresh_token)

    async def exchange_refresh_token(self, client, refresh_token: RefreshToken, scopes: list[str]) -> OAuthToken:
        self.log.append({"event": "grant", "grant_type": "refresh_token", "resource": refresh_token.resource,
                         "refused": self.reject_refresh})
        if self.reject_refresh:
            raise TokenError("invalid_grant", "refresh refused by the test")
        # Rotated: the old refresh token works no more.
        self.refresh.pop(refresh_token.token, None)
        return self._issue(client.client_id, scopes or refresh_token.scopes, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        if found is None or (found.expires_at is not None and found.expires_at < time.time()):
            return None
        return found

    async def revoke_token(self, token) -> None:
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)

    def _issue(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.issued += [access, refresh]
        expires_at = int(time.time()) + ACCESS_TOKEN_SECONDS
        self.access[access] = AccessToken(
            token=access, client_id=client_id, scopes=scopes, expires_at=expires_at, resource=resource
        )
        self.refresh[refresh] = RefreshToken(token=refresh, client_id=client_id, scopes=scopes, resource=resource)
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=ACCESS_TOKEN_SECONDS,
            scope=" ".join(scopes),
            refresh_token=refresh,
        )


def main() -> None:
    listening = listener()
    port = listening.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    provider = Provider()
    server = MCPServer(
        "oauth-protected",
        auth_server_provider=provider,
        auth=AuthSettings(
            issuer_url=origin,
            resource_server_url=f"{origin}/mcp",
            validate_token_resource=True,
            required_scopes=["tools"],
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=["tools"], default_scopes=["tools"]
            ),
        ),
    )

    @server.tool(description="Answers its text back.")
    def echo(text: str) -> str:
        return f"echo: {text}"

    @server.custom_route("/test/log", methods=["GET"])
    async def log(request: Request) -> JSONResponse:
        return JSONResponse(provider.log)

    @server.custom_route("/test/tokens", methods=["GET"])
    async def tokens(request: Request) -> JSONResponse:
        return JSONResponse(provider.issued)

    @server.custom_route("/test/revoke-access", methods=["POST"])
    async def revoke_access(request: Request) -> JSONResponse:
        provider.access.clear()
        return JSONResponse({"revoked": True})

    @server.custom_route("/test/reject-refresh", methods=["POST"])
    async def reject_refresh(request: Request) -> JSONResponse:
        provider.reject_refresh = True
        return JSONResponse({"reject_refresh": True})

    serve(server.streamable_http_app(), listening)


if __name__ == "__main__":
    sys.exit(main())
