"""A production-shaped stack on one machine: ``make scale`` (``python -m deploy``).

PostgreSQL (Rasa's SQL tracker store and the shop database), Redis (Rasa's lock
store), two or more Rasa instances and two action servers, all behind HAProxy, from
Debian's packages. ``deploy.config`` holds what the stack is made of and renders its
files (pure); ``deploy.postgres`` runs the project's own PostgreSQL cluster;
``deploy.stack`` starts, faults and stops the processes; ``benchmarks/scale.py``
drives the load and faults through it. ``docs/deploy.md`` takes the same shape to
Kubernetes.
"""
