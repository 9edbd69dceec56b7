from glob import glob

from setuptools import find_packages, setup

package_name = 'softmaint'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
        ('share/' + package_name + '/config/scenarios', glob('config/scenarios/*.yaml')),
        ('share/' + package_name + '/config/profiles', glob('config/profiles/*.yaml')),
        ('share/' + package_name + '/config/foxglove', glob('config/foxglove/*.json')),
        # public keys only: a private key never goes where robots get their files
        ('share/' + package_name + '/config/keys', glob('config/keys/*.pub.pem')),
        ('share/' + package_name + '/models', glob('models/*.onnx') + glob('models/*.json')
         + glob('models/*.onnx.sig')),
    ] + [  # a profile's own student: models/profiles/NAME/student.{onnx,json,onnx.sig}
        ('share/' + package_name + '/' + d,
         glob(d + '/*.onnx') + glob(d + '/*.json') + glob(d + '/*.onnx.sig'))
        for d in sorted(glob('models/profiles/*'))
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='softmaint maintainers',
    maintainer_email='maintainers@softmaint.dev',
    description='Onboard node suite: sensor ingestion, student inference (onnxruntime), '
                'maintenance agent, bringup.',
    license='Apache-2.0',
    entry_points={'console_scripts': [
        'ingestion = softmaint.ingestion_node:main',
        'inference = softmaint.inference_node:main',
        'agent = softmaint.agent_node:main',
        'monitor = softmaint.monitor_node:main',
        'foxglove_view = softmaint.foxglove_view_node:main',
        'softmaint-log = softmaint.log_cli:main',
        'softmaint-operator = softmaint.operator_cli:main',
        'softmaint-bringup = softmaint.bringup:main',
    ]},
)
