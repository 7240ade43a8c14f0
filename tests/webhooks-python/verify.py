"""Verifies webhook deliveries with the Standard Webhooks reference library, apart from Switchboard's own code.

Reads a JSON list of deliveries, each {"headers": {...}, "body": "..."}, on standard input, and the
destination's secret from WEBHOOK_SECRET. Prints one JSON object per delivery with its verified payload,
and exits with 1 at the first delivery whose signature does not verify.
"""

import json
import os
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    webhook = Webhook(os.environ["WEBHOOK_SECRET"])
    for delivery in json.load(sys.stdin):
        try:
            payload = webhook.verify(delivery["body"], delivery["headers"])
        except WebhookVerificationError as error:
            print(json.dumps({"error": str(error), "headers": delivery["headers"]}))
            return 1
        print(json.dumps({"verified": payload}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
