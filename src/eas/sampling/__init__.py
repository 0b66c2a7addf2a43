"""Questions -> graded samples: loading questions, few-shot prompts, sampling and grading."""
