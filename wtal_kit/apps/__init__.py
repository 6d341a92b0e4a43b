"""What people open: the ``wtal`` command line (:mod:`.cli`, its flags :mod:`.flags`), the live
sessions behind the hyperparameter sliders (:mod:`.sessions`), Voila serving (:mod:`.serve`) and
the demo (:mod:`.demo`). The pages themselves are ``widgets/`` and ``notebooks/``."""
