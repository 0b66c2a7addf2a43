"""Training-data selection at a budget, training a student, evaluating it, and the experiment."""
