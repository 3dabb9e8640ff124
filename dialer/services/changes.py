"""An audited change (`record_change`) and the audit log's one conversion of a value
(`jsonable`): they live with the audit log's SQL (`dialer.db.repositories.audit`), so the
dispatch worker and the callbacks record changes exactly as the services do."""

from __future__ import annotations

from dialer.db.repositories.audit import jsonable, record_change

__all__ = ["jsonable", "record_change"]
