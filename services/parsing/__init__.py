"""Reading feeds: tick and bar files, by line, into validated models or reasons."""
