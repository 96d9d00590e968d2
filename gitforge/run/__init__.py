"""One phase's life: selection, the run record, the fix loop, the pipeline, pilot and planner, endings, host-agent sessions, recovery."""
