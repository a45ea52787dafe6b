"""Running a submission: in a locked-down container (docker) or, for previews, locally."""
