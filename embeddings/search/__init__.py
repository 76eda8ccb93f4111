"""Reading: query text (query), a search as asked (request), the keyword side (keywords), the fusion
rules (ranking) and their inputs (fusion), which model's vectors answer (model_switch), and the
read-side entry points (selectors). May import: clip, models, queue, files, index."""
