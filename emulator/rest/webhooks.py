"""`/1/webhooks/...` and `/1/tokens/{token}/webhooks/...`: a token's webhooks.

A webhook belongs to the token that made it; another token sees it as not there. Creating one checks
the callback URL with a `HEAD` first, as Trello does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import shapes
from emulator.calls import Call
from emulator.models import TrelloError, Webhook, new_id, not_found

if TYPE_CHECKING:
    from emulator.trello import RouteSpec, TrelloApi

FIELDS = ("description", "callbackURL", "idModel", "active")


def own_webhook(api: TrelloApi, call: Call, name: str = "id") -> Webhook:
    webhook = api.world.webhook(call.path(name))
    if webhook.token != call.token:
        raise not_found(webhook.id)
    return webhook


async def create_webhook(api: TrelloApi, call: Call) -> dict[str, Any]:
    if "token" in call.request.path_params:
        api.require_own_token(call)
    url, id_model = call.text("callbackURL"), call.text("idModel")
    if not url:
        raise TrelloError(400, "invalid value for callbackURL")
    if not id_model:
        raise TrelloError(400, "invalid value for idModel")
    api.world.model(id_model)  # an unknown model: answered before any callback check
    if any(
        w.id_model == id_model and w.callback_url == url and w.token == call.token
        for w in api.world.webhooks.values()
    ):
        raise TrelloError(400, "A webhook with that callback, model, and token already exists")
    status = await api.dispatcher.check_callback(url)
    if status != 200:
        raise TrelloError(400, f"URL ({url}) did not return 200 status code, got {status}")
    webhook = Webhook(
        id=new_id(),
        id_model=id_model,
        callback_url=url,
        token=call.token,
        description=call.text("description") or "",
        active=call.flag("active", default=True),
    )
    api.world.webhooks[webhook.id] = webhook
    return shapes.webhook(webhook)


async def token_webhooks(api: TrelloApi, call: Call) -> list[dict[str, Any]]:
    api.require_own_token(call)
    return [shapes.webhook(w) for w in api.world.webhooks.values() if w.token == call.token]


async def get_webhook(api: TrelloApi, call: Call) -> dict[str, Any]:
    return shapes.webhook(own_webhook(api, call, _id_name(api, call)), call.params.get("fields"))


async def get_webhook_field(api: TrelloApi, call: Call) -> dict[str, Any]:
    return shapes.value(shapes.webhook(own_webhook(api, call), "all"), call.path("field"))


async def update_webhook(api: TrelloApi, call: Call) -> dict[str, Any]:
    webhook = own_webhook(api, call, _id_name(api, call))
    change(api, call, webhook, {name: call.params[name] for name in FIELDS if name in call.params})
    return shapes.webhook(webhook)


async def update_webhook_field(api: TrelloApi, call: Call) -> dict[str, Any]:
    webhook, field = own_webhook(api, call), call.path("field")
    if field not in FIELDS:
        raise not_found()
    if "value" not in call.params:
        raise TrelloError(400, "invalid value for value")
    change(api, call, webhook, {field: call.params["value"]})
    return shapes.webhook(webhook)


def change(api: TrelloApi, call: Call, webhook: Webhook, values: dict[str, Any]) -> None:
    if "callbackURL" in values:
        if not values["callbackURL"]:
            raise TrelloError(400, "invalid value for callbackURL")
        webhook.callback_url = str(values["callbackURL"])
    if "idModel" in values:
        api.world.model(str(values["idModel"]))
        webhook.id_model = str(values["idModel"])
    if "description" in values:
        webhook.description = str(values["description"])
    if "active" in values:
        active = str(values["active"]).lower()
        if active not in ("true", "false"):
            raise TrelloError(400, "invalid value for active")
        webhook.active = active == "true"
        if webhook.active:  # switching a webhook on clears its failures
            webhook.consecutive_failures, webhook.first_consecutive_fail_date = 0, None


async def delete_webhook(api: TrelloApi, call: Call) -> dict[str, Any]:
    webhook = own_webhook(api, call, _id_name(api, call))
    del api.world.webhooks[webhook.id]
    return {"_value": None}


def _id_name(api: TrelloApi, call: Call) -> str:
    """The path parameter naming the webhook: `id`, or `idWebhook` under `/tokens/{token}/webhooks`."""
    if "token" in call.request.path_params:
        api.require_own_token(call)
        return "idWebhook"
    return "id"


ROUTES: list[RouteSpec] = [
    ("POST", "/1/webhooks", create_webhook),
    ("GET", "/1/webhooks/{id}", get_webhook),
    ("PUT", "/1/webhooks/{id}", update_webhook),
    ("DELETE", "/1/webhooks/{id}", delete_webhook),
    ("GET", "/1/webhooks/{id}/{field}", get_webhook_field),
    ("PUT", "/1/webhooks/{id}/{field}", update_webhook_field),
    ("GET", "/1/tokens/{token}/webhooks", token_webhooks),
    ("POST", "/1/tokens/{token}/webhooks", create_webhook),
    ("PUT", "/1/tokens/{token}/webhooks", create_webhook),  # an older spelling of the same create
    ("GET", "/1/tokens/{token}/webhooks/{idWebhook}", get_webhook),
    ("PUT", "/1/tokens/{token}/webhooks/{idWebhook}", update_webhook),
    ("DELETE", "/1/tokens/{token}/webhooks/{idWebhook}", delete_webhook),
]
