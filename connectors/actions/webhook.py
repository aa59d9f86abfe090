"""`webhook` actions: send the rendered payload as JSON, with the action's idempotency key.

    actions:
      - name: ask-promoters
        type: webhook
        url: https://crm.example.com/hooks/ask
        headers: {Authorization: "Bearer ${CRM_TOKEN}"}
        payload: {incentive_usd: "{params.incentive_usd}", period: "{period}"}
        reach: result.sent              # where the response JSON says how many were reached

Every attempt (retries included) carries `Idempotency-Key: <outcome>/<period>/<approach>/<action>`
so the receiver can de-duplicate. A 2xx answer is success; the reach is the number at `reach`
in its JSON body, or None when there is none.

Values filled into `url` are percent-encoded, so `{params.user}` = `a/../b?x=1` stays one path
segment (or one query value). The call, retries included, ends within `deadline` seconds (30);
an answer over `max_bytes` (1 MiB) is refused; a redirect is not followed (a 3xx fails).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator

from connectors.actions.base import Action, ActionConfig, ActionContext
from connectors.actions.template import PLACEHOLDER
from connectors.base import ENV_REFERENCE
from cycles.errors import ActionError
from cycles.numbers import is_finite_number
from cycles.secrets import redact


class WebhookConfig(ActionConfig):
    type: Literal["webhook"] = "webhook"
    url: str  # may use {period}, {outcome}, {params.X}
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # sent as they are
    payload: dict[str, Any] = Field(default_factory=dict)  # may use {period}, {params.X}, ...
    timeout: float = Field(default=10, gt=0)  # seconds, per connect, read or write
    deadline: float = Field(default=30, gt=0)  # seconds for the whole call, retries included
    retries: int = Field(default=3, ge=0, le=20)
    backoff: float = Field(default=0.5, ge=0)
    max_bytes: int = Field(default=2**20, ge=1)  # a larger answer is refused
    reach: str = "reach"  # dotted key path of the reach in the response JSON

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        if not value.strip().lower().startswith(("http://", "https://", "{", ENV_REFERENCE)):
            raise ValueError("url must start with http:// or https://")
        return value.strip()

    def __repr__(self) -> str:  # a secret in the URL must not show up in a traceback either
        return redact(super().__repr__())

    __str__ = __repr__


class WebhookAction(Action):
    type = "webhook"
    Config = WebhookConfig
    config: WebhookConfig

    def check(self, base_dir: Path) -> None:
        import httpx

        url = PLACEHOLDER.sub("x", self.config.url)  # filled in per cycle
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ActionError(f"url is not a valid URL: {redact(str(exc))}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ActionError("url needs http:// or https:// and a host")

    def run(self, context: ActionContext) -> float | None:
        import httpx

        from connectors._http import send

        spec = self.rendered(context)  # the payload; the URL is filled in URL-safe below
        url = self.url(context)
        headers = {k: v.get_secret_value() for k, v in self.config.headers.items()}
        headers = {k: v for k, v in headers.items() if k.lower() != "idempotency-key"}
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = context.key  # the same on every attempt: receivers dedupe
        try:
            content = json.dumps(spec["payload"], default=str, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise ActionError(f"action {self.config.name!r}: payload is not JSON: {exc}") from None
        with httpx.Client(timeout=httpx.Timeout(self.config.timeout)) as client:
            response = send(
                client,
                self.config.method,
                url,
                what=f"action {self.config.name!r}",
                error=ActionError,
                retries=self.config.retries,
                backoff=self.config.backoff,
                deadline=self.config.deadline,
                max_bytes=self.config.max_bytes,
                content=content,
                headers=headers,
            )
        return reach_of(response, self.config.reach)

    def url(self, context: ActionContext) -> str:
        """`url` with `{params.X}`, `{period}`, ... filled in, each value percent-encoded."""
        fields = context.fields()

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            try:
                value = context.params[name[7:]] if name.startswith("params.") else fields[name]
            except KeyError:
                raise ActionError(
                    f"action {self.config.name!r}: url: unknown placeholder {{{name}}}"
                ) from None
            text = quote(str(value), safe="")
            return text.replace(".", "%2E") if text in (".", "..") else text  # no dot segment

        return PLACEHOLDER.sub(fill, self.config.url)


def reach_of(response: Any, path: str) -> float | None:
    """The number at dotted key `path` of the response's JSON body (digits index lists), or
    None."""
    from connectors._http import dig

    try:
        body = response.json()
    except ValueError:
        return None
    node = dig(body, path)
    return float(node) if is_finite_number(node) else None
