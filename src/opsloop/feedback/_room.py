"""The feedback room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="feedback",
    doc="Feedback and annotations: scores on traces, spans, sessions and served predictions.",
    tables=("opsloop.feedback._tables",),
    routers=("opsloop.feedback.api:router",),
    cli_groups=(("feedback", "opsloop.feedback.cli:app"),),
    client=ClientProperty("feedback", "opsloop.feedback:Feedback"),
    nav=(Nav("feedback", "Feedback", order=75),),
    ui_routes=(
        UiRoute("feedback", "pages/feedback.js", "renderFeedback"),
        UiRoute("feedback/queues/:name", "pages/annotate.js", "renderAnnotate"),
    ),
    ui_modules=("pages/trace_feedback.js",),
    ui_styles=("feedback.css",),
    # The trace filter's score.NAME fields (tracing calls it; it never imports this room).
    hooks=(("tracing.filter_field", "opsloop.feedback._filter:score_condition"),),
)
