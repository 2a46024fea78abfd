"""Multi-query associative recall (MQAR): the recall study of the sequence mixers.

``data`` generates the Zoology task, ``causal_taylor`` holds our causal Taylor linear attention,
``models`` the small language models (one per mixer) and ``train`` the training and evaluation loop.
The command-line study is ``benchmarks/mqar.py``.
"""
