"""`page`/`page_size` pagination answering `{count, num_pages, results}` (the pipeline client's contract).

- `page` defaults to 1 and `page_size` to 100; a `page_size` above 5000 is capped to 5000 and
  `num_pages` is computed with the size actually used, so a client looping over 2..num_pages never asks
  for a page that does not exist.
- A page past the end is an empty page (the client stops at the first empty `results`), not a 404:
  rows can vanish between two page requests.
- A malformed `page` or `page_size` (0, -1, "abc") is a 400 `{"error": ...}`, never silently replaced.
- `count=false` skips the `COUNT(*)` (seconds on millions of rows): `count` and `num_pages` are then null
  and `next` tells whether more rows follow.
- A view may know its exact length without a `COUNT(*)` (`exact_count()`, e.g. the unfiltered raw-frame
  list from the cached statistics): that number is used as is; `None` means "count the rows".
"""
from __future__ import annotations

from django.core.paginator import Page, Paginator
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 5000


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValidationError({name: f"{raw!r} is not a positive integer"}) from None
    if value < 1:
        raise ValidationError({name: f"{raw!r} is not a positive integer"})
    return value


class _UncountedPage:
    """The slice of one page when no count was asked for (`count=false`)."""

    def __init__(self, rows: list, number: int, has_next: bool) -> None:
        self.object_list, self.number, self._has_next = rows, number, has_next

    def __iter__(self):
        return iter(self.object_list)

    def has_next(self) -> bool:
        return self._has_next

    def has_previous(self) -> bool:
        return self.number > 1

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1


class _KnownCountPaginator(Paginator):
    """A Paginator told its exact count by the view, so it never runs `COUNT(*)` itself."""

    def __init__(self, object_list, per_page: int, count: int | None = None) -> None:
        super().__init__(object_list, per_page)
        if count is not None:
            self.count = count  # replaces the cached_property's COUNT(*)


class PortalPagination(PageNumberPagination):
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    count_query_param = "count"

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw in (None, ""):
            return self.page_size
        return min(_positive_int(self.page_size_query_param, raw), self.max_page_size)

    def _wants_count(self, request) -> bool:
        raw = request.query_params.get(self.count_query_param, "").strip().lower()
        if raw in ("", "1", "true", "yes"):
            return True
        if raw in ("0", "false", "no"):
            return False
        raise ValidationError({self.count_query_param: f"{raw!r} is not true or false"})

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = self.get_page_size(request)
        raw_page = request.query_params.get(self.page_query_param)
        self.counted = self._wants_count(request)
        if not self.counted:
            number = 1 if raw_page in (None, "") else _positive_int(self.page_query_param, raw_page)
            start = (number - 1) * size
            rows = list(queryset[start : start + size + 1])
            self.page = _UncountedPage(rows[:size], number, len(rows) > size)
            return list(self.page)
        exact_count = getattr(view, "exact_count", None)
        paginator = _KnownCountPaginator(queryset, size, exact_count() if exact_count is not None else None)
        if raw_page in (None, ""):
            number = 1
        elif raw_page in self.last_page_strings:
            number = paginator.num_pages
        else:
            number = _positive_int(self.page_query_param, raw_page)
        if number > paginator.num_pages:
            self.page = Page([], number, paginator)
            return []
        self.page = paginator.page(number)
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True
        return list(self.page)

    def get_next_link(self):
        if not self.page.has_next():
            return None
        return replace_query_param(self.request.build_absolute_uri(), self.page_query_param, self.page.next_page_number())

    def get_previous_link(self):
        if not self.page.has_previous():
            return None
        url = self.request.build_absolute_uri()
        number = self.page.number - 1
        if self.counted:
            number = min(number, max(1, self.page.paginator.num_pages))
        if number == 1:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, number)

    def get_paginated_response(self, data):
        counted = self.counted
        return Response(
            {
                "count": self.page.paginator.count if counted else None,
                "num_pages": self.page.paginator.num_pages if counted else None,
                "page": self.page.number,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["required"] = ["count", "num_pages", "results"]
        schema["properties"]["count"]["nullable"] = True
        schema["properties"]["num_pages"] = {"type": "integer", "nullable": True, "example": 3}
        schema["properties"]["page"] = {"type": "integer", "example": 1}
        return schema

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for p in params:
            if p["name"] == self.page_size_query_param:
                p["description"] = f"Rows per page (default {self.page_size}, at most {self.max_page_size})."
        params.append(
            {
                "name": self.count_query_param,
                "required": False,
                "in": "query",
                "description": "false: skip the total count (count and num_pages are null).",
                "schema": {"type": "boolean"},
            }
        )
        return params
