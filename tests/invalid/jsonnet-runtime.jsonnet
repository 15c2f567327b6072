local f(x) = error 'steps must not be empty';
{
  apiVersion: 'obsgen/v1',
  steps: f(1),
}
